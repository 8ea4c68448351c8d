FROM ubuntu:14.04
ADD		[ "vimrc", "/tmp" ]
COPY	[ "test file", "/tmp" ]
ADD		[ "test file", "/tmp/test file" ]
COPY [ "a", "b", "/dest/" ]
