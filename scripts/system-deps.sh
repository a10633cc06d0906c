#!/usr/bin/env bash
# System packages the test suite needs, installed only when missing.
# Chromium comes from Debian (never `playwright install`, which downloads a
# browser and fails without internet).
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# PostgreSQL for the tests marked `postgres` (tests/pg.py starts a throwaway
# cluster from these binaries), unless a server is given in RMGAP_ANNOT_TEST_PG.
if [ -z "${RMGAP_ANNOT_TEST_PG:-}" ] && ! command -v initdb >/dev/null 2>&1 \
   && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
# nginx for the test that runs deploy/rmgap-locations.conf in front of two app servers.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
# pdflatex (with booktabs) for the test that compiles `rmgap-annot paper`'s tables.
command -v pdflatex >/dev/null 2>&1 || need+=(texlive-latex-recommended)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: installing ${need[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "system-deps: missing ${need[*]} (not root: the tests that need them will be skipped)" >&2
  fi
fi
