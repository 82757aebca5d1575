#!/usr/bin/env python3
# failures.py OUT [names...]: each failed test's body and results, NUL runs
# collapsed and long results cut, so a run's failures can be read.
import re, sys
text = open(sys.argv[1], 'rb').read().decode('utf-8', 'replace')
want = set(sys.argv[2:])
for m in re.finditer(r'^==== (\S+) (.*?) FAILED\n(.*?)^==== \1 FAILED$', text, re.S | re.M):
    if want and m.group(1) not in want:
        continue
    body = re.sub(r'\x00{8,}', lambda z: '<%d NULs>' % len(z.group(0)), m.group(3))
    body = re.sub(r' {40,}', lambda z: '<%d spaces>' % len(z.group(0)), body)
    out = []
    for part in re.split(r'(^---- .*$)', body, flags=re.M):
        out.append(part if len(part) < 1500 else part[:1500] + '...<cut>\n')
    print('==== %s %s' % (m.group(1), m.group(2)))
    print(''.join(out).rstrip())
    print()
