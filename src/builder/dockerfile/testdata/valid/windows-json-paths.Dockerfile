# escape=`
FROM mcr.microsoft.com/windows/nanoserver
COPY ["C:\\src\\app", "C:\\app"]
RUN ["cmd", "/S", "/C", "echo hi"]
ENV APPDIR=C:\app `
    LOGDIR=C:\logs
