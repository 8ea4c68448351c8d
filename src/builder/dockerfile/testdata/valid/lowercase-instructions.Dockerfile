from alpine
run echo hello
copy . /app
cmd echo done
