FROM alpine
RUN <<-EOF
	echo one
		echo two
	EOF
RUN <<-'EOF' sh
	no $EXPANSION here
EOF
RUN <<EOF
	kept
	EOF
EOF
