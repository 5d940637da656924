# syntax=docker/dockerfile:1
# One image for both processes: `warmpool-operator` (the default command) and
# `warmpool-studio --host 0.0.0.0 --port 8000`.
#   docker build -t ghcr.io/warmpool/warmpool:0.1.0 --build-arg WARMPOOL_COMMIT=$(git rev-parse HEAD) .
# (WARMPOOL_COMMIT is the `commit` label of warmpool_build_info; "unknown" when not given.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: a wheel of the package (never an editable install)
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN pip install "build>=1.2"
COPY pyproject.toml README.md ./
COPY crds ./crds
COPY operator ./operator
COPY api ./api
COPY sim ./sim
RUN python -m build --wheel --outdir /dist .

# ---- runtime: the wheel installed into a clean interpreter, run as a non-root user
FROM ${PYTHON_IMAGE} AS runtime
ARG WARMPOOL_COMMIT=unknown
ENV WARMPOOL_COMMIT=${WARMPOOL_COMMIT} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 warmpool \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/warmpool --create-home \
      --shell /usr/sbin/nologin warmpool
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install /dist/*.whl
WORKDIR /home/warmpool
USER 10001:10001
EXPOSE 8080 8000
CMD ["warmpool-operator"]
