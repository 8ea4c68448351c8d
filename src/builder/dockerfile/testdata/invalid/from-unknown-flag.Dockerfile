FROM --arch=arm64 alpine
