#!/bin/sh
# Online backup of the SQLite ledger: sqlite3's .backup is consistent while billing writes.
# The copy is kept only if SQLite's integrity check says "ok"; a failed or partial copy is
# deleted and the script exits non-zero (systemd then shows the backup as failed).
# The anchor file (closures' hashes, kept outside the database) is copied beside it.
# usage: backup-sqlite.sh DB_FILE BACKUP_DIR KEEP_DAYS [ANCHOR_FILE]
set -eu
db=$1; dir=$2; keep=${3:-30}; anchors=${4:-}
mkdir -p "$dir"
stamp=$(date +%Y%m%d-%H%M%S)
out="$dir/fabmeter-$stamp.db"
trap 'rm -f "$out" "$out.gz.part"' EXIT
python3 - "$db" "$out" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
try:
    src.backup(dst)
    answers = [row[0] for row in dst.execute("PRAGMA integrity_check")]
finally:
    dst.close(); src.close()
if answers != ["ok"]:
    sys.exit(f"backup of {sys.argv[1]} refused: PRAGMA integrity_check says {'; '.join(answers[:5])}")
PY
gzip -c "$out" > "$out.gz.part"
mv "$out.gz.part" "$out.gz"
if [ -n "$anchors" ] && [ -f "$anchors" ]; then
    cp "$anchors" "$dir/fabmeter-$stamp.anchors"
fi
trap - EXIT
rm -f "$out"
find "$dir" -name 'fabmeter-*.db.gz' -mtime +"$keep" -delete
find "$dir" -name 'fabmeter-*.anchors' -mtime +"$keep" -delete
