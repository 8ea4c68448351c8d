# syntax=docker/dockerfile:1.7
# escape=`
FROM `
    image
RUN echo `
    hello
