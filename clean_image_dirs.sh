#!/usr/bin/env bash
# Empties the pipeline's data folders; keeps image_original/ and each folder's .gitkeep.
set -euo pipefail
cd "$(dirname "$0")"
for dir in image_database image_event_database image_event_alerts; do
  mkdir -p "$dir"
  find "$dir" -mindepth 1 ! -name .gitkeep -delete
  echo "emptied $dir/"
done
