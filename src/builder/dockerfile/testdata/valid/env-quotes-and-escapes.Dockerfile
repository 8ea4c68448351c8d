FROM ubuntu
ENV name="value'quote space'value2"
ENV name='value"double quote"value2'
ENV name="a\"b"
ENV name='a\b'
ENV name="''"
ENV greeting="hello $USER" literal='$HOME' escaped=\$HOME
