FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install --no-cache-dir -e . && useradd --system --uid 10001 medic
COPY . .
RUN SECRET_KEY=build-only-not-secret-build-only-not-secret DATABASE_URL=sqlite:////tmp/build.db \
    python manage.py collectstatic --no-input
USER medic
EXPOSE 8000
CMD ["gunicorn", "medic.wsgi:application", "--config", "deploy/gunicorn.conf.py"]
