FROM alpine
CMD --doit [ "a", "b" ]
