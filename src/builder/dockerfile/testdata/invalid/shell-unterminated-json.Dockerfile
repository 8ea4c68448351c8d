FROM alpine
SHELL ["sh"
