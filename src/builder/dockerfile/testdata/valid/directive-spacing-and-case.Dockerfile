#   SYNTAX = docker/dockerfile:1   
#check=skip=JSONArgsRecommended;error=true
# Escape= `
FROM busybox
RUN echo x `
  y
