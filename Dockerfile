FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml requirements.lock ./
RUN pip install --no-cache-dir "torch==2.13.0" \
 && pip install --no-cache-dir -c requirements.lock gunicorn
COPY . .
RUN pip install --no-cache-dir -c requirements.lock -e . && python manage.py collectstatic --noinput
EXPOSE 8000
