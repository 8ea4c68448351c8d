# foo=bar
# escape=`
FROM busybox
RUN echo x \
  y
