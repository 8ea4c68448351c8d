# escape=`

FROM mcr.microsoft.com/windows/servercore:ltsc2022
COPY testfile.txt c:\
RUN dir c:\ `
    && echo done
WORKDIR C:\Users\app
