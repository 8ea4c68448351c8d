FROM	alpine
RUN	echo	hi
ENV	KEY	value	with	tabs
EXPOSE	80	443
