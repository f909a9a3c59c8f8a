# syntax=docker/dockerfile:1
# One image for every postrec process (api, worker, scheduler, one-shot seed and build): the command picks the role.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, pinned by constraints.txt, so code changes do not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir -p postrec api batch common worker && pip install -c constraints.txt . && pip uninstall -y postrec
COPY postrec postrec
COPY api api
COPY batch batch
COPY common common
COPY worker worker
RUN pip install -c constraints.txt --no-deps .

FROM python:3.11-slim AS runtime
# libgomp: OpenMP runtime of CatBoost's and implicit's native code.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 postrec && mkdir /data && chown postrec /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 POSTREC_DATA_DIR=/data
USER postrec
WORKDIR /home/postrec
VOLUME ["/data"]
EXPOSE 8000
CMD ["postrec", "serve", "--host", "0.0.0.0", "--port", "8000"]
