"""Chapter 2's tools (refimpl.explain's spatial dependencies, refimpl.pde,
refimpl.operators) import without torch_geometric; the molecular explainers say
which extra they need."""

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    # a meta-path finder that hides torch_geometric, as on a machine without it
    prelude = textwrap.dedent("""
        import sys
        class _NoPyG:
            def find_spec(self, name, path=None, target=None):
                if name == "torch_geometric" or name.startswith("torch_geometric."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None
        sys.meta_path.insert(0, _NoPyG())
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_explain_and_pde_tools_import_without_pyg():
    r = _run("""
        import refimpl.explain as E
        from refimpl.explain import spatial_dependency, compare_maps
        from refimpl.explain import erf_study
        import refimpl.pde, refimpl.operators, refimpl.stats, refimpl.results
        assert "torch_geometric" not in sys.modules
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_molecular_explainers_name_the_extra():
    r = _run("""
        import refimpl.explain as E
        try:
            E.RISEExplainer
        except ImportError as err:
            print(err)
    """)
    assert r.returncode == 0, r.stderr
    assert "pip install 'refimpl[molecules]'" in r.stdout and "torch_geometric" in r.stdout


def test_lazy_names_resolve_with_pyg():
    import refimpl.explain as E
    from refimpl.explain.rise import RISEExplainer

    assert E.RISEExplainer is RISEExplainer
    assert set(E.__all__) <= set(dir(E))
