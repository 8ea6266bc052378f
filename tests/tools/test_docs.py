# SPDX-License-Identifier: LGPL-2.1-or-later
"""The newcomer's documents agree with the code: the README's demo section
has exactly the steps tools/demo.py prints, in order; the docs do not send
readers to a SPEC.md a clone does not have; docs/reference.md names every
file the build installs (headers, man pages and docs aside) and every method
and signal of the introspection XML."""

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get('FDBROKER_SOURCE_DIR') or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get('FDBROKER_BUILD_DIR') or os.path.join(SOURCE, 'build')


def read(*path):
    with open(os.path.join(SOURCE, *path)) as f:
        return f.read()


def test_the_readme_demo_section_lists_the_demo_steps_in_order_and_says_how_many(t):
    demo = read('tools', 'demo.py')
    consts = dict(re.findall(r"^([A-Z_]+) = '([^']*)'$", demo, re.M))
    steps = [re.sub(r'\{(\w+)\}', lambda m: consts.get(m.group(1), m.group(0)), title)
             for title in re.findall(r"self\.step\(f?'([^']*)'\)", demo)]
    readme = read('README.md')
    section = readme[readme.index('### The demo'):]
    section = section[:section.index('\n### ', 1)]
    listed = re.findall(r'^\d+\. \*\*(.+?)\.\*\*', section, re.M)
    t.ok(len(steps) >= 5, 'tools/demo.py has its numbered steps', steps)
    t.eq(listed, steps, 'the README\'s demo section lists exactly the steps the demo prints, in order')
    m = re.search(r'prints (\w+)\s+numbered steps', section)
    words = {5: 'five', 6: 'six', 7: 'seven', 8: 'eight'}
    t.ok(m and m.group(1) == words.get(len(steps)), 'and says how many', m and m.group(0))


def test_no_document_points_at_a_shared_spec_md_a_clone_does_not_have(t):
    for doc in ('README.md', os.path.join('docs', 'behaviour.md'), os.path.join('docs', 'reference.md'),
                os.path.join('docs', 'client.md')):
        t.ok('shared/SPEC.md' not in read(doc), '%s does not point at ../shared/SPEC.md' % doc)


def test_the_readme_and_behaviour_md_point_at_reference_md(t):
    t.ok('docs/reference.md' in read('README.md') and 'reference.md' in read('docs', 'behaviour.md'),
         'the README and behaviour.md point at docs/reference.md')


def test_reference_md_names_every_member_of_the_introspection_xml(t):
    ref = read('docs', 'reference.md')
    root = ET.fromstring(read('introspection', 'org.fdbroker.Broker1.xml'))
    members = [e.get('name') for e in root.iter() if e.tag in ('method', 'signal', 'property')]
    missing = [m for m in members if not re.search(r'\b%s\b' % re.escape(m), ref)]
    t.eq(missing, [], 'reference.md names every method, signal and property of the XML (%d)' % len(members))


def test_reference_md_names_every_installed_file(t):
    r = subprocess.run(['meson', 'introspect', BUILD, '--installed'], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip('installed files: meson introspect failed: %s' % r.stderr.strip())
    ref = read('docs', 'reference.md')
    installed = sorted(set(json.loads(r.stdout).values()))
    skip = ('/include/', '/man/', '/doc/', '.so.')
    names = sorted({os.path.basename(p) for p in installed if not any(s in p for s in skip)})
    missing = [n for n in names if n not in ref]
    t.eq(missing, [], 'reference.md names every installed file (%d names)' % len(names))


def test_the_readme_install_list_has_the_gir_completion_activation_file_and_examples(t):
    readme = read('README.md')
    t.ok(all(n in readme for n in ('FdBroker-1.0.gir', 'bash-completion', 'dbus-1/services/', 'examples/policy.d')),
         'the README\'s install list has the .gir, completion, session activation file and examples')
