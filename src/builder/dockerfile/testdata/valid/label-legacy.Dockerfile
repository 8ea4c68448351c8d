FROM alpine
LABEL maintainer James Turnbull "james@example.com"
LABEL maintainer Erik \\Hollensbe <erik@hollensbe.org>
