FROM ubuntu
RUN echo hello\
  world\
  goodnight  \
  moon
RUN echo goodbye\
frog
