FROM alpine # a comment here is not allowed
