FROM busybox
EXPOSE 80
EXPOSE 9000 5000/udp 6000-6010/tcp
VOLUME /data
VOLUME /opt/nagios/var /opt/nagios/etc
VOLUME ["/var/log", "/var/db"]
