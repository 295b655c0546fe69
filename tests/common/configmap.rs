//! A configuration directory laid out as Kubernetes mounts a ConfigMap, and swapped the way the
//! kubelet swaps it.

use std::path::Path;

/// Lay out `dir` as a ConfigMap mount: `name -> ..data/name`, `..data -> ..VERSION`; the
/// version's files are written, `..data` is not moved (see [`swap`]).
pub fn version(dir: &Path, version: &str, files: &[(&str, impl AsRef<str>)]) {
    let vdir = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&vdir).unwrap();
    for (name, content) in files {
        std::fs::write(vdir.join(name), content.as_ref()).unwrap();
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

/// Atomically point `..data` at a version, as the kubelet does.
pub fn swap(dir: &Path, version: &str) {
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}
