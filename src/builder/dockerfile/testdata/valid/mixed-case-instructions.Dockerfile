From alpine As Build
rUn make
Workdir /src
entryPoint ["/bin/app"]
