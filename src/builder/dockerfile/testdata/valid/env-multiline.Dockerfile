FROM ubuntu
ENV name=value \
    name1=value1 \
    name2="value2a \
           value2b" \
	name3="value3a\n\"value3b\"" \
