" Vim syntax file
" Language:    audlang (customer-marketing audiences as code)
" Filenames:   *.aud
"
" The keywords must match grammar/audlang.lark, the single source of the
" syntax: tests/editors fails when the grammar gains a keyword this file does
" not highlight. The token classes are those of the VS Code grammar and the
" Pygments lexer.

if exists("b:current_syntax")
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
syn iskeyword @,48-57,_

" Attribute names and other bare words.
syn match   audlangName          "\<\h\w*\>"

" Keywords, by class.
syn keyword audlangDeclaration   segment score destination campaign table moved
syn keyword audlangPaused        paused
syn keyword audlangLogical       and or not
syn keyword audlangBoolean       true false
syn keyword audlangDate          today
syn keyword audlangType          text number integer boolean date timestamp
syn keyword audlangUnit          hour hours day days week weeks month months year years mile miles km
syn keyword audlangFunction      env
syn keyword audlangKeyword       has_purchased tagged abandoned_checkout near store within last since before
syn keyword audlangKeyword       after on between in list is set starts ends with product
syn keyword audlangKeyword       category collection brand channel orders quantity spend of this ago
syn keyword audlangKeyword       audience salt holdout treatment subaudience otherwise to from header
syn keyword audlangKeyword       point points if anniversary next most_purchased first_purchased top bottom
" `contains` is an argument of :syn keyword, so it is matched instead.
syn match   audlangKeyword       "\<contains\>"

" Numbers, percentages and dates (ISO, and evergreen month-day: 11-01 of last year).
syn match   audlangNumber        "\<\d\+\%(\.\d\+\)\=%\="
syn match   audlangDate          "\<\d\{4}-\d\d-\d\d\%([[:alnum:]_-]\)\@!"
syn match   audlangDate          "\<\d\d-\d\d\%([[:alnum:]_-]\)\@!"

" Operators. `<` and `>` open and close a body unless a value follows (then they compare),
" as the parser decides.
syn match   audlangOperator      "[<>]=\=\|!=\|=\|+\|-"
syn match   audlangBlock         "[<>]\%(=\|\s*\%([\"0-9-]\|\<today\>\|\<true\>\|\<false\>\)\)\@!"
syn match   audlangDelimiter     "[(),]"

" Strings; the name after `segment`, `destination` or `campaign` (at the start of a
" line) and after `table` is the declared name.
syn region  audlangString        start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+ oneline contains=audlangEscape
syn match   audlangEscape        +\\["\\nt]+ contained
syn match   audlangDeclaredName  +\%(^\s*\%(paused\s\+\)\=\%(segment\|destination\|campaign\)\s\+\)\@<="\%([^"\\]\|\\.\)*"+
syn match   audlangDeclaredName  "\%(^\s*table\s\+\)\@<=\h\w*"
syn match   audlangKind          +\%(^\s*\%(paused\s\+\)\=destination\s\+"\%([^"\\]\|\\.\)*"\s\+\)\@<=\h\w*+
syn match   audlangSettingKey    "^\s*\zs\h\w*\ze\%(\s\+\%(text\|number\|integer\|boolean\|date\|timestamp\)\)\=\s*=[^=]"

" Comments. Comment lines directly above a declaration (no blank line between)
" are its description.
syn match   audlangComment       "#.*$" contains=@Spell
syn match   audlangDocComment    "^\s*#.*\n\%(\%(\s*#.*\n\)*\s*\%(paused\s\+\)\=\%(\%(segment\|destination\|campaign\|score\)\s\+\"\|table\s\+\h\|moved\s\+\l\)\)\@=" contains=@Spell

syn sync minlines=50

hi def link audlangDeclaration   Structure
hi def link audlangPaused        StorageClass
hi def link audlangLogical       Operator
hi def link audlangBoolean       Boolean
hi def link audlangDate          Constant
hi def link audlangType          Type
hi def link audlangUnit          Special
hi def link audlangFunction      Function
hi def link audlangKeyword       Keyword
hi def link audlangNumber        Number
hi def link audlangOperator      Operator
hi def link audlangBlock         Delimiter
hi def link audlangDelimiter     Delimiter
hi def link audlangString        String
hi def link audlangEscape        SpecialChar
hi def link audlangDeclaredName  Function
hi def link audlangKind          Type
hi def link audlangSettingKey    Identifier
hi def link audlangComment       Comment
hi def link audlangDocComment    SpecialComment
hi def link audlangName          Identifier

let b:current_syntax = "audlang"

let &cpo = s:cpo_save
unlet s:cpo_save
