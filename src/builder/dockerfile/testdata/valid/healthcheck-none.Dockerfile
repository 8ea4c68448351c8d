FROM debian
HEALTHCHECK NONE
healthcheck none
