#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (driven by playwright-core; a test tool's own
# browser download does not work offline), when it is missing.
source "$(dirname "$0")/lib.sh"

has chromium || apt_install chromium
