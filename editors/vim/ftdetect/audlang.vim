" audlang: customer-marketing audiences as code (*.aud files).
autocmd BufRead,BufNewFile *.aud setfiletype audlang
