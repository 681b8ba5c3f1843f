"""Sphinx extension for the rendered book: offline assets and unambiguous citations.

Registered in ``_config.yml`` under ``sphinx.local_extensions``. It does three
things that the stock Jupyter Book 1 stack does not (and drops the inline scripts
that reach every page twice, one of them a JavaScript error):

1. **MathJax from the built site.** ``mathjax_path`` points to a pinned MathJax 3
   copy that ``make`` installs from the npm registry into ``_vendor/static`` (see
   the Makefile's ``mathjax`` target). If that folder is missing the build stops
   with a message that names the make target, instead of silently falling back
   to a CDN.
2. **A local Colab badge.** Chapters carry the usual remote "Open in Colab" badge
   (it is what readers see on GitHub and in Colab); in the HTML book the image
   is served from ``_static`` so that the page loads with no network.
3. **Author-year labels with a/b suffixes.** With sphinxcontrib-bibtex's
   ``author_year`` style two papers by "Gao et al." from 2025 both read
   "Gao et al., 2025". The label style ``author_year`` below gives every entry
   the label "<names>, <year>" and appends a, b, ... where two entries would
   share it (as pybtex's ``alpha`` style does for its labels); the referencing
   style ``author_year_suffixed`` prints that suffixed year in the text, so the
   citation "(Gao et al., 2025b)" matches the bibliography's "[Gao et al., 2025b]".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pybtex.plugin
from docutils import nodes
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.template import node
from sphinx.errors import ConfigError
from sphinx.transforms import SphinxTransform
from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing.author_year import (
    AuthorYearReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_author import (
    ExtraAuthorReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_empty import (
    ExtraEmptyReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_label import (
    ExtraLabelReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join, join2, post_text, pre_text
from sphinxcontrib.bibtex.style.template import reference as ref_node

HERE = Path(__file__).resolve().parent
COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_COLAB_BADGE = HERE / "static" / "colab-badge.svg"

# ---------------------------------------------------------------- citations


def _last_names(person) -> str:
    return Text(*person.rich_last_names).render_as("text")


def author_year_base(entry) -> str:
    """``"Cao, 2021"``, ``"Fey and Lenssen, 2019"``, ``"Gao et al., 2025"``."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_names(p) for p in persons]
    if not names:
        who = entry.fields.get("title", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels ``"<names>, <year>"``, suffixed a, b, ... where they would clash."""

    def format_labels(self, sorted_entries):
        labels = [author_year_base(entry) for entry in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + chr(ord("a") + seen[label])
                seen[label] += 1


class AuthorYearStyle(UnsrtStyle):
    """pybtex's ``plain`` layout (sorted by author, year, title) with
    :class:`AuthorYearLabelStyle` labels."""

    default_label_style = "author_year"
    default_sorting_style = "author_year_title"


@node
def suffixed_year(children, data):
    """The year of a citation as its bibliography label writes it (``2025b``)."""
    assert not children
    return Text(data["formatted_entry"].label.rsplit(", ", 1)[-1])


class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name: str):
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            ref_node[join(sep=self.author_year_sep)[
                self.person.author_or_editor_or_title(full="s" in role_name),
                suffixed_year]],
            post_text,
        ]


class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name: str):
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[
                self.bracket.left,
                join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
                    pre_text, ref_node[suffixed_year], post_text],
                self.bracket.right,
            ],
        ]


class _Year(ExtraYearReferenceStyle):
    def inner(self, role_name: str):
        return ref_node[suffixed_year]


@dataclass
class SuffixedAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's ``author_year`` style with suffixed years."""

    def __post_init__(self):
        self.styles.extend([
            _Parenthetical(bracket=self.bracket_parenthetical, person=self.person,
                           author_year_sep=self.author_year_sep,
                           pre_text_sep=self.pre_text_sep,
                           post_text_sep=self.post_text_sep),
            _Textual(bracket=self.bracket_textual, person=self.person,
                     text_reference_sep=self.text_reference_sep,
                     pre_text_sep=self.pre_text_sep,
                     post_text_sep=self.post_text_sep),
            ExtraAuthorReferenceStyle(bracket=self.bracket_author,
                                      person=self.person),
            ExtraLabelReferenceStyle(bracket=self.bracket_label),
            _Year(bracket=self.bracket_year),
            ExtraEmptyReferenceStyle(),
        ])
        # skip AuthorYearReferenceStyle.__post_init__, which would add the
        # unsuffixed styles a second time
        super(AuthorYearReferenceStyle, self).__post_init__()


pybtex.plugin.register_plugin("pybtex.style.labels", "author_year",
                              AuthorYearLabelStyle)
pybtex.plugin.register_plugin("pybtex.style.formatting", "author_year",
                              AuthorYearStyle)
register_plugin("sphinxcontrib.bibtex.style.referencing",
                "author_year_suffixed", SuffixedAuthorYearReferenceStyle)

# ------------------------------------------------------------- offline assets


class LocalColabBadge(SphinxTransform):
    """Serve the "Open in Colab" badge from the book instead of colab.google."""

    default_priority = 200

    def apply(self, **kwargs) -> None:
        for img in self.document.findall(nodes.image):
            if img.get("uri") == COLAB_BADGE_URL:
                # a leading "/" is relative to the source directory (repo root)
                rel = LOCAL_COLAB_BADGE.relative_to(Path(self.env.srcdir))
                img["uri"] = "/" + rel.as_posix()
                img["candidates"] = {}


def _check_mathjax(app, config) -> None:
    path = config.mathjax_path
    if "://" in path or path.startswith("//"):
        raise ConfigError(f"mathjax_path {path!r} is remote; the book must render "
                          "math offline. Point it to the copy that `make mathjax` "
                          "installs.")
    found = [Path(app.confdir) / d / path for d in config.html_static_path
             if (Path(app.confdir) / d / path).is_file()]
    if not found:
        raise ConfigError(f"mathjax_path {path!r} is not in any html_static_path "
                          f"folder {list(config.html_static_path)}; run `make "
                          "mathjax` (the Makefile installs MathJax from npm).")


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    """Inline scripts that an extension adds after the builder started (sphinx-thebe,
    sphinx-togglebutton) reach the page twice, once with the file name ``None``
    and once with ``''``; the second ``const THEBE_JS_URL`` is a JavaScript
    error. Keep the first of each."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attrs = getattr(script, "attributes", {})
        key = (str(getattr(script, "filename", script) or ""),
               getattr(script, "priority", 500), tuple(sorted(attrs.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _add_static(app, config) -> None:
    config.html_static_path.append(str(HERE / "static"))


def setup(app):
    app.add_transform(LocalColabBadge)
    app.connect("config-inited", _add_static)
    app.connect("config-inited", _check_mathjax)
    app.add_css_file("bookhtml.css")
    app.connect("html-page-context", _drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True,
            "version": "1.0"}
