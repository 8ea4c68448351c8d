# leading comment

FROM alpine

   # indented comment
RUN echo hi # passed to the shell

   RUN echo indented
