"""Prints the first fenced code block of LANG in a Markdown file: what CI runs of a README.

usage: python3 .ci/readme_block.py README.md LANG
"""
import re
import sys

path, lang = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
m = re.search(r"^```" + re.escape(lang) + r"\n(.*?)^```$", text, re.S | re.M)
if not m:
    sys.exit(f"{path}: no ```{lang} block")
sys.stdout.write(m.group(1))
