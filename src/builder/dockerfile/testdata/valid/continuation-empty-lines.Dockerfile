FROM ubuntu
RUN foo \

bar \
   
baz
CMD ["x"]
