#!/usr/bin/env bash
# The Python packages the GPU machine's image lacks for the server and worker, as CPython 3.12
# manylinux x86-64 wheels in .whl/ (git-ignored), at the versions this checkout's .venv runs.
# There: python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=$(git rev-parse --git-path info/exclude)
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
names=(
  fastapi starlette pydantic pydantic-core pydantic-settings python-dotenv typing-inspection
  annotated-types uvicorn python-multipart sqlalchemy greenlet aiosqlite alembic mako asyncpg
  bcrypt diffusers isal torchsde trampoline opentelemetry-api importlib-metadata
)
platforms=()
for n in 28 27 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
mkdir -p .whl
for name in "${names[@]}"; do
  version=$(.venv/bin/python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${name}${version:+==$version}"
done
ls .whl | wc -l
