FROM alpine
ENV B another\\path
ENV C trailing\\backslash\\
ENV D This should not be appended to C
