FROM ubuntu
RUN apt-get update \
# a comment between continuation lines
    && apt-get install -y vim \
    # an indented comment
    && rm -rf /var/lib/apt/lists/*
