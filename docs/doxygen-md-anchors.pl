#!/usr/bin/perl
# Doxygen input filter for the Markdown pages (docs/Doxyfile, FILTER_PATTERNS): gives each heading
# GitHub's anchor as an explicit label ({#slug}), so in-page links such as [Errors](#errors)
# resolve in the HTML reference as they do on GitHub. Headings in fenced code blocks are left
# alone. Only perl-base is needed.
use strict;
use warnings;
open(my $in, '<:utf8', $ARGV[0]) or die "doxygen-md-anchors: cannot read $ARGV[0]: $!\n";
binmode(STDOUT, ':utf8');
my $fenced = 0;
while (my $line = <$in>) {
    $fenced = !$fenced if $line =~ /^\s*```/;
    if (!$fenced && $line =~ /^(#{1,6})\s+(.*?)\s*$/ && $line !~ /\{#[^}]*\}\s*$/) {
        my ($hashes, $title) = ($1, $2);
        (my $slug = lc $title) =~ s/[^\w\- ]//g;
        $slug =~ s/ /-/g;
        $line = "$hashes $title {#$slug}\n";
    }
    print $line;
}
