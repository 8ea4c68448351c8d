FROM alpine
RUN ["apk", "add", "curl"]
CMD [ "curl", "-s" ]
ENTRYPOINT	[	"/sbin/tini",	"--"	]	
