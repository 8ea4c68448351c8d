FROM alpine AS base-1.0_x
FROM base-1.0_x as Second
FROM second AS THIRD
