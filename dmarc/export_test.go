package dmarc

// PublicSuffixOrgDomain is publicSuffixOrgDomain, for the black-box tests.
var PublicSuffixOrgDomain = publicSuffixOrgDomain
