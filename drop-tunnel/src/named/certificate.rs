//! cloudflared's login certificate (`cert.pem`): what `cloudflared tunnel
//! login` writes once, after the user picked a domain in the browser, and
//! what every command that creates, lists or routes tunnels needs.
//!
//! cloudflared looks for it as `credentials.FindDefaultOriginCertPath`
//! does (`credentials/origin_cert.go`): `cert.pem` in `~/.cloudflared`,
//! `~/.cloudflare-warp`, `~/cloudflare-warp`, `/etc/cloudflared` and
//! `/usr/local/etc/cloudflared` (`config.DefaultConfigSearchDirectories`,
//! `config/configuration.go`), unless `--origincert` names one. The file
//! it finds is also where `tunnel create` puts each tunnel's credentials:
//! `<tunnel id>.json` beside it (`cmd/cloudflared/tunnel/subcommand_context.go`).

use std::path::{Path, PathBuf};

use crate::TunnelError;

/// The certificate's file name in each folder searched.
const FILE_NAME: &str = "cert.pem";
/// cloudflared's folders in the user's home, in its order.
const HOME_FOLDERS: [&str; 3] = [".cloudflared", ".cloudflare-warp", "cloudflare-warp"];
/// cloudflared's system folders, searched after the home ones.
const SYSTEM_FOLDERS: [&str; 2] = ["/etc/cloudflared", "/usr/local/etc/cloudflared"];

/// Where the login certificate is looked for: one given file, or
/// `cert.pem` in a list of folders. [`CertificateSearch::cloudflared_defaults`]
/// is cloudflared's own search; nothing here knows any other place.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateSearch {
    /// A certificate to use and nothing else, like cloudflared's
    /// `--origincert` (or `TUNNEL_ORIGIN_CERT`, which drop-tunnel does not
    /// pass on: read it yourself and set it here).
    pub certificate: Option<PathBuf>,
    /// Folders searched for `cert.pem`, in order, when no certificate is
    /// given.
    pub folders: Vec<PathBuf>,
}

impl CertificateSearch {
    /// cloudflared's own search, with `~` meaning `home`: `~/.cloudflared`,
    /// `~/.cloudflare-warp`, `~/cloudflare-warp`, `/etc/cloudflared`,
    /// `/usr/local/etc/cloudflared`. Without a home, only the last two.
    pub fn cloudflared_defaults(home: Option<&Path>) -> Self {
        let in_home = home
            .into_iter()
            .flat_map(|home| HOME_FOLDERS.iter().map(move |folder| home.join(folder)));
        let system = SYSTEM_FOLDERS.iter().map(PathBuf::from);
        CertificateSearch {
            certificate: None,
            folders: in_home.chain(system).collect(),
        }
    }

    /// cloudflared's own search in this user's home (`HOME`, as cloudflared
    /// reads it).
    pub fn for_this_user() -> Self {
        let home = std::env::var_os("HOME").filter(|home| !home.is_empty());
        Self::cloudflared_defaults(home.as_deref().map(Path::new))
    }

    /// This certificate, and nothing else.
    pub fn at(certificate: impl Into<PathBuf>) -> Self {
        CertificateSearch {
            certificate: Some(certificate.into()),
            folders: Vec::new(),
        }
    }

    /// The certificate cloudflared would use: the given one if it is a
    /// file, else the first `cert.pem` file in the folders.
    pub fn find(&self) -> Result<PathBuf, TunnelError> {
        let candidates = self.candidates();
        candidates
            .iter()
            .find(|path| std::fs::metadata(path).is_ok_and(|meta| !meta.is_dir()))
            .cloned()
            .ok_or(TunnelError::NotLoggedIn {
                searched: candidates,
            })
    }

    /// Every path looked at, in order.
    fn candidates(&self) -> Vec<PathBuf> {
        match &self.certificate {
            Some(certificate) => vec![certificate.clone()],
            None => self.folders.iter().map(|dir| dir.join(FILE_NAME)).collect(),
        }
    }
}

impl Default for CertificateSearch {
    /// [`CertificateSearch::for_this_user`].
    fn default() -> Self {
        Self::for_this_user()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The search is cloudflared's: three folders in the home, then two of
    /// the system's.
    #[test]
    fn the_default_search_is_cloudflareds_own() {
        let search = CertificateSearch::cloudflared_defaults(Some(Path::new("/home/u")));
        assert_eq!(
            search.folders,
            [
                "/home/u/.cloudflared",
                "/home/u/.cloudflare-warp",
                "/home/u/cloudflare-warp",
                "/etc/cloudflared",
                "/usr/local/etc/cloudflared",
            ]
            .map(PathBuf::from)
        );
        let homeless = CertificateSearch::cloudflared_defaults(None);
        assert_eq!(homeless.folders.len(), 2);
    }

    /// The first folder with a `cert.pem` file wins; a folder named
    /// `cert.pem` is no certificate.
    #[test]
    fn the_first_certificate_found_is_the_one() {
        let home = tempfile::tempdir().unwrap();
        let search = CertificateSearch::cloudflared_defaults(Some(home.path()));
        std::fs::create_dir_all(home.path().join(".cloudflared/cert.pem")).unwrap();
        std::fs::create_dir_all(home.path().join("cloudflare-warp")).unwrap();
        let warp = home.path().join("cloudflare-warp/cert.pem");
        std::fs::write(&warp, "x").unwrap();
        assert_eq!(search.find().unwrap(), warp);
        let later = home.path().join(".cloudflare-warp");
        std::fs::create_dir_all(&later).unwrap();
        std::fs::write(later.join("cert.pem"), "x").unwrap();
        assert_eq!(search.find().unwrap(), later.join("cert.pem"));
    }

    /// Without a certificate the error names every place looked at and
    /// says how to log in.
    #[test]
    fn no_certificate_says_where_it_looked_and_how_to_log_in() {
        let home = tempfile::tempdir().unwrap();
        let mut search = CertificateSearch::cloudflared_defaults(Some(home.path()));
        search.folders.truncate(1);
        let err = search.find().unwrap_err();
        let TunnelError::NotLoggedIn { searched } = &err else {
            panic!("not logged in, got {err:?}");
        };
        assert_eq!(searched, &[home.path().join(".cloudflared/cert.pem")]);
        assert!(
            err.to_string().contains("run `cloudflared tunnel login`"),
            "{err}"
        );

        let given = CertificateSearch::at(home.path().join("elsewhere.pem"));
        let TunnelError::NotLoggedIn { searched } = given.find().unwrap_err() else {
            panic!("not logged in");
        };
        assert_eq!(searched, [home.path().join("elsewhere.pem")]);
    }
}
