"""Print each Lambda zip `make package` built: its size and its bootstrap's size (unzipped)."""
import pathlib
import sys
import zipfile

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/lambda")
zips = sorted(root.glob("*/*/bootstrap.zip"))
if not zips:
    sys.exit(f"no Lambda zips under {root}: did `cargo lambda build` run?")
for z in zips:
    arch, function = z.parent.parent.name, z.parent.name
    with zipfile.ZipFile(z) as f:
        bootstrap = f.getinfo("bootstrap").file_size
    print(f"{arch:<8} {function:<18} zip {z.stat().st_size / 1e6:6.2f} MB   bootstrap {bootstrap / 1e6:6.2f} MB   {z}")
