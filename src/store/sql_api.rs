//! SQL for [`ApiStore`](super::ApiStore), shared by both backends (same
//! conventions as `sql.rs`).

macro_rules! sql_api_store {
    ($Store:ident, $Db:ty) => {
        #[async_trait::async_trait]
        impl crate::store::ApiStore for $Store {}
    };
}

pub(crate) use sql_api_store;
