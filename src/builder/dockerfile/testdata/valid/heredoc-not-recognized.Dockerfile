FROM alpine
RUN ["<<EOF"]
RUN echo "<<EOF"
RUN echo a<<b
RUN echo '<<EOF'
USER <<NOTHEREDOC
