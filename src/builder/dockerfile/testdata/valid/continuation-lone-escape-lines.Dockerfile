FROM ubuntu
RUN echo hi \
 \
 world \
\
 good\
\
night
