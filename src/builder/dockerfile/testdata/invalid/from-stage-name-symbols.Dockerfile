FROM alpine
FROM alpine AS my$stage
