# escape=`
FROM alpine
ENV A="quote `" inside" B=`$literal
LABEL path="C:\Program Files\App"
