#!/usr/bin/env python3
"""`scripts/demo visit`: one web visit played against the running demo, as the page's agent
plays it through the page (session, save_lead, trigger_call), then the call's record printed as
it grows, read with `callway-control call <id> --json`, and in full at the end.

    demo_visit.py CALLWAY_CONTROL LEAD_JSON

Run by scripts/demo with the control plane's environment (the CLI reads the same database).
Standard library only.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:8080"
FINAL = {"completed", "busy", "failed", "no-answer", "canceled"}
SUMMARY = "Visiteuse du site, veut être rappelée pour une démonstration de Callway."
# Seconds to follow the call before handing over to the commands it prints.
FOLLOW_SECS = 120
# Seconds to wait, once Twilio says the call is over, for the gateway's end-of-call events and
# the end-of-call summary.
END_GRACE_SECS = 5


def post(path, body, cap=None):
    headers = {"content-type": "application/json"}
    if cap:
        headers["authorization"] = f"Bearer {cap}"
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"scripts/demo visit: {path} answered {e.code}: {e.read().decode(errors='replace')}")
    except urllib.error.URLError as e:
        sys.exit(f"scripts/demo visit: {BASE} unreachable ({e.reason}): is scripts/demo running?")


def record(control, call_id):
    out = subprocess.run([control, "call", call_id, "--json"], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def main():
    control, lead = sys.argv[1], json.loads(sys.argv[2])
    masked = lead["phone"][:2] + " ** ** ** " + lead["phone"][-2:]
    print("1. The page opens a session (POST /api/session)")
    session = post("/api/session", {})
    print(f"2. The agent saves the lead (save_lead): {lead['first_name']} {lead['last_name']}, {masked}, consent given")
    saved = post("/api/tools/save_lead", lead, session["capability"])
    print(f"   lead {saved['lead_id']}")
    print("3. The agent asks for the call (trigger_call)")
    call = post("/api/tools/trigger_call", {"lead_id": saved["lead_id"], "summary": SUMMARY}, session["capability"])
    call_id = call["call_id"]
    print(f"   call {call_id}: {call['message']}")
    print(f"4. The call's record as it grows (scripts/demo control call {call_id} --json):")
    seen, over_at, deadline = set(), None, time.time() + FOLLOW_SECS
    while time.time() < deadline:
        r = record(control, call_id)
        if r is not None:
            for t in r["timeline"]:
                key = (t["at"], t["kind"], t["what"], t["source"])
                if key not in seen:
                    seen.add(key)
                    print(f"   +{t['offset_ms'] / 1000:5.1f} s  {t['what']:<22} {t['source']:<13} {t['detail'] or ''}", flush=True)
            status = r["call"]["status"]
            ended = any(t["kind"] == "end" for t in r["timeline"])
            if status in FINAL and over_at is None:
                over_at = time.time()
            summarised = r["summary"]["call"] is not None
            if over_at is not None and (
                (ended and summarised) or status != "completed" or time.time() - over_at > END_GRACE_SECS
            ):
                break
        time.sleep(0.5)
    else:
        print(f"   (still going after {FOLLOW_SECS} s: run the command below again later)")
    print(f"\n5. The whole record (scripts/demo control call {call_id}):\n", flush=True)
    subprocess.run([control, "call", call_id])
    print(f"More: scripts/demo control leads | lead {saved['lead_id']} | call {call_id} (--json, --reveal),")
    print(f"      the operator page {BASE}/admin#call={call_id}")


if __name__ == "__main__":
    main()
