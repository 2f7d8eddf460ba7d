# syntax=docker/dockerfile:1
# The finbank image: one image, every process is a `finbank` subcommand
# (the HTTP service by default; the batch job overrides the command).
#   docker build -t finbank .
#   docker run -p 8000:8000 finbank                      # finbank serve --host 0.0.0.0
# The other processes are the same image with another command:
#   `finbank relay`                   the PostgreSQL outbox to Kafka
#   `finbank worker pix-settlement`   settles PIX payments from Kafka
#   `finbank reconcile`               the daily reconciliation (AWS Batch)
#   `finbank db migrate`              schema migrations (a one-off task per release)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with finbank and its runtime extras, no compilers left behind --
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/finbank
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
RUN /opt/finbank/bin/pip install -c constraints.txt ".[all]" && /opt/finbank/bin/finbank --help > /dev/null

# -- runtime: the virtualenv only, as an unprivileged user --
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/finbank/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FINBANK_LOG_FORMAT=json
RUN groupadd --system --gid 10001 finbank \
    && useradd --system --uid 10001 --gid finbank --no-create-home --shell /usr/sbin/nologin finbank
COPY --from=build /opt/finbank /opt/finbank
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["finbank"]
CMD ["serve", "--host", "0.0.0.0"]
