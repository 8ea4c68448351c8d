FROM alpine
CMD ['echo','single quotes are invalid JSON']
CMD ["echo", "unterminated bracket"
RUN [ -f /etc/os-release ] && cat /etc/os-release
ENTRYPOINT ["echo", "look ma, no quote!]
